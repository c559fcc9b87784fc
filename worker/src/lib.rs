//! worker: registers with a coordinator, acquires jobs, renders them with render-core on
//! blocking threads, uploads outputs. Reserved: nothing here yet.
