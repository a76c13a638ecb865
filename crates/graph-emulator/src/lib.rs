//! A faithful, stateful Microsoft Graph emulator with fault injection.
