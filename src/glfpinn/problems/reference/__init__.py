"""Classical reference solvers (computed in-package, no downloads) for PINN benchmark problems."""
