"""`python -m facerec.train`: the facerec-train command under a module name (the loop is facerec.training.train)."""

from facerec.cli.train import main

if __name__ == "__main__":
    main(prog_name="facerec-train")
