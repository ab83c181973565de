"""Sources: the only stage that reads files, pipes or interfaces."""
