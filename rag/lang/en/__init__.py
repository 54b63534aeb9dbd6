"""English: stop words, question patterns and what they mean in Chinese text."""
