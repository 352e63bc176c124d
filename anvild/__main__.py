from anvild.cli import main

main()
