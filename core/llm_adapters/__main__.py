from llm_adapters.cli import main

main()
