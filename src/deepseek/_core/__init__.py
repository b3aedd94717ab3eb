"""Private helpers every layer may use: errors, configs, atomic files, arrays and tensors, machine facts, progress, tables, timing."""
