"""`python -m conveyor`: the `conveyor` command (`python -m conveyor --version`)."""

from conveyor.cli.main import main

if __name__ == "__main__":
    main()
