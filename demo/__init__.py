"""The sandbox: a FlowMastery-like target API and its staging users (tracereplay.demo)."""
