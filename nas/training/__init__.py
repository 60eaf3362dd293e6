"""Training a found or published architecture into a model: recipes, training directories, weights."""
