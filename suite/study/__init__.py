"""Growth studies: arms (growth plans, plan overrides, optimizers) and the scratch and seed-continued controls, trained
on one seed, data stream and token budget and compared arm against arm."""
