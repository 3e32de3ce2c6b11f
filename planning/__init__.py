"""Plans and their simulated outcomes: a schedule per SKU, simulated on paired demand paths,
planned from a policy, and questioned with what-ifs."""
