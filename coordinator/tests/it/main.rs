mod api;
mod store;
