"""Side-by-side measurements: each benchmark times ours and a peer in the same run and prints the ratio."""
