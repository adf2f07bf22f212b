"""Team memory: notes every plan and step can see; ``core`` holds the brand voice."""
