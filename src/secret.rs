//! A secret value (password, client secret, admin token) that never prints: its `Debug` and `Display` show
//! `[redacted]`. One type serves the whole workspace: the Graph client's.

pub use graph_client::Secret;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }
}
