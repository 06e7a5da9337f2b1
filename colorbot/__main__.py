from colorbot.cli import main

main()
