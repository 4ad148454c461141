"""`python -m suite.cli ...` is `growbench ...` (torchrun uses this form: `torchrun ... -m suite.cli train`)."""

from suite.cli.app import main

if __name__ == "__main__":
    main()
