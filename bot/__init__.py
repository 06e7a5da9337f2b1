"""Everything that talks to Reddit: the client, scraping, finding each post's image pair, replies."""
