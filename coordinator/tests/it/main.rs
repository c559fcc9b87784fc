mod api;
mod rest;
mod smart;
mod store;
