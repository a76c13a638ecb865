//! The one Microsoft Graph client: token cache, throttling, batch, paging, delta, errors.
