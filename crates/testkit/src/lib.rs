//! Test harness: a disposable database, slot, publication and topic names per test on the local stack.
