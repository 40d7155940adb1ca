"""The commands of `tracereplay`, one module per stage; importing one registers it."""
