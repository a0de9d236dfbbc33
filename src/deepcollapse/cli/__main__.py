from deepcollapse.cli import main

main()
