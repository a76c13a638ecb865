//! Writes the desired state to Microsoft Graph and the mapping tables, effectively exactly once.
