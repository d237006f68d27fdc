"""One module per chapter, each registering that chapter's exercises (cases, points, mistakes)."""
