from deepseek.cli import main

main()
