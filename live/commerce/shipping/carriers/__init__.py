"""The carriers behind one interface (base.Carrier): Shippo when SHIPPO_API_KEY is set, else the sandbox carrier."""
