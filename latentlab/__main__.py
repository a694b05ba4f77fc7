"""`python -m latentlab ...`: the `latentlab` command (also under torchrun: `torchrun ... -m latentlab -- CMD ...`)."""

from latentlab.cli.main import main

if __name__ == "__main__":
    main()
