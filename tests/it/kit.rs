//! Shared test kit: free ports, polling with deadlines, the real binary.
