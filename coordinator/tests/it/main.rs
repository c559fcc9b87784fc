mod api;
mod smart;
mod store;
