"""limo: LIMO (Less is More for Reasoning) as software.

Curate a small set of hard problems with excellent long chain-of-thought solutions, fine-tune on it, evaluate.
Run `limo --help` for the commands.
"""

__version__ = "0.1.0"
