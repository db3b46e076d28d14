from verzuimhub.cli import main

main()
