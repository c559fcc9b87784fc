//! coordinator: gRPC services, job store, scheduler, template store, outbox, metrics.
//! Reserved: nothing here yet. It will never link wgpu or FFmpeg.
