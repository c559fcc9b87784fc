//! trigger: business events → campaign rules → render requests → signed delivery webhooks.
//! Reserved: nothing here yet.
