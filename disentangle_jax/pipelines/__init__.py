"""Multi-step runs built from the train loop (the feature-aggregation VAE: `featvae`)."""
