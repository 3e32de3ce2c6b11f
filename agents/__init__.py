"""Policies behind one interface: PPO (sb3-contrib MaskablePPO), heuristic baselines and the
exact dynamic-programming optimum."""
