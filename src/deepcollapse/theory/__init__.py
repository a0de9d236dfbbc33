"""The papers' analytic solutions, their exact losses, and numerical checks of the theorems."""
