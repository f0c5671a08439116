from tiercli.cli import main

main()
