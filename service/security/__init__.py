"""Who may call the service: checks on the CDS client's credentials (CDS Hooks 2.0 §Trusting CDS Clients)."""
