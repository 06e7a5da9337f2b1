"""The residual-encoder colorization network: model, training, full-resolution inference, export."""
