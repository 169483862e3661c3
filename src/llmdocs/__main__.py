from llmdocs.cli import main

main()
