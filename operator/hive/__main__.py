from hive.cli.main import main

main()
