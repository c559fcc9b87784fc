//! Hand-written declarations for the part of libespeak-ng's C API (`espeak-ng/speak_lib.h`,
//! API revision 12) that the helper uses.
//!
//! Only what is needed is declared. C enums are passed as `c_int` (their size on every platform
//! eSpeak NG supports), so an unknown value coming back from the library is never undefined
//! behaviour on the Rust side.

#![allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code
)]

use std::ffi::{c_char, c_int, c_short, c_uint, c_void};

/// `espeak_AUDIO_OUTPUT::AUDIO_OUTPUT_SYNCHRONOUS`: like retrieval mode, but `espeak_Synth`
/// returns only when synthesis is complete, and the callback runs on the calling thread.
pub const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;

/// `espeak_Initialize` option: report `espeakEVENT_PHONEME` events.
pub const espeakINITIALIZE_PHONEME_EVENTS: c_int = 0x0001;
/// `espeak_Initialize` option: phoneme events name phonemes in IPA (UTF-8), not eSpeak mnemonics.
pub const espeakINITIALIZE_PHONEME_IPA: c_int = 0x0002;
/// `espeak_Initialize` option: return an error instead of calling `exit()` when the data
/// directory cannot be found.
pub const espeakINITIALIZE_DONT_EXIT: c_int = 0x8000;

/// `espeak_Synth` flag: the text is UTF-8.
pub const espeakCHARS_UTF8: c_uint = 1;

/// `espeak_POSITION_TYPE::POS_CHARACTER`.
pub const POS_CHARACTER: c_int = 1;

/// `espeak_ERROR` values.
pub const EE_OK: c_int = 0;
pub const EE_INTERNAL_ERROR: c_int = -1;
pub const EE_BUFFER_FULL: c_int = 1;
pub const EE_NOT_FOUND: c_int = 2;

/// `espeak_PARAMETER` values.
pub const espeakRATE: c_int = 1;
pub const espeakPITCH: c_int = 3;

/// `espeak_EVENT_TYPE` values.
pub const espeakEVENT_LIST_TERMINATED: c_int = 0;
pub const espeakEVENT_WORD: c_int = 1;
pub const espeakEVENT_SENTENCE: c_int = 2;
pub const espeakEVENT_MARK: c_int = 3;
pub const espeakEVENT_PLAY: c_int = 4;
pub const espeakEVENT_END: c_int = 5;
pub const espeakEVENT_MSG_TERMINATED: c_int = 6;
pub const espeakEVENT_PHONEME: c_int = 7;
pub const espeakEVENT_SAMPLERATE: c_int = 8;

/// The anonymous `id` union of `espeak_EVENT`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union espeak_EVENT_id {
    /// WORD and SENTENCE events.
    pub number: c_int,
    /// MARK and PLAY events (UTF-8).
    pub name: *const c_char,
    /// PHONEME events: the phoneme name in UTF-8, NUL-terminated unless it fills all 8 bytes.
    pub string: [c_char; 8],
}

/// `espeak_EVENT`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct espeak_EVENT {
    /// `espeak_EVENT_TYPE`.
    pub type_: c_int,
    /// Message identifier (or 0 for key or character).
    pub unique_identifier: c_uint,
    /// Characters from the start of the text.
    pub text_position: c_int,
    /// Word length in characters (WORD events).
    pub length: c_int,
    /// Time in ms within the generated speech output.
    pub audio_position: c_int,
    /// Sample index within the generated speech output ("internal use" in the header; it is
    /// the exact sample the event happens at, counted from the start of the message).
    pub sample: c_int,
    /// The pointer passed to `espeak_Synth`.
    pub user_data: *mut c_void,
    /// Event-specific data.
    pub id: espeak_EVENT_id,
}

/// `t_espeak_callback`: `int SynthCallback(short *wav, int numsamples, espeak_EVENT *events)`.
/// Return 0 to continue synthesis, 1 to abort.
pub type t_espeak_callback =
    unsafe extern "C" fn(wav: *mut c_short, numsamples: c_int, events: *mut espeak_EVENT) -> c_int;

#[link(name = "espeak-ng")]
unsafe extern "C" {
    /// Returns the sample rate in Hz, or `EE_INTERNAL_ERROR`.
    pub fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;

    pub fn espeak_SetSynthCallback(callback: Option<t_espeak_callback>);

    pub fn espeak_SetVoiceByName(name: *const c_char) -> c_int;

    pub fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int) -> c_int;

    pub fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: c_uint,
        position_type: c_int,
        end_position: c_uint,
        flags: c_uint,
        unique_identifier: *mut c_uint,
        user_data: *mut c_void,
    ) -> c_int;

    pub fn espeak_Synchronize() -> c_int;

    pub fn espeak_Terminate() -> c_int;

    /// Returns the version string; stores the data directory in `*path_data` if not null.
    pub fn espeak_Info(path_data: *mut *const c_char) -> *const c_char;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    /// Checked against `speak_lib.h` with a C program on x86_64 Linux:
    /// `sizeof(espeak_EVENT) == 40`, alignment 8, offsets type 0, unique_identifier 4,
    /// text_position 8, length 12, audio_position 16, sample 20, user_data 24, id 32.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    fn espeak_event_layout_matches_c() {
        assert_eq!(size_of::<espeak_EVENT>(), 40);
        assert_eq!(align_of::<espeak_EVENT>(), 8);
        assert_eq!(offset_of!(espeak_EVENT, type_), 0);
        assert_eq!(offset_of!(espeak_EVENT, unique_identifier), 4);
        assert_eq!(offset_of!(espeak_EVENT, text_position), 8);
        assert_eq!(offset_of!(espeak_EVENT, length), 12);
        assert_eq!(offset_of!(espeak_EVENT, audio_position), 16);
        assert_eq!(offset_of!(espeak_EVENT, sample), 20);
        assert_eq!(offset_of!(espeak_EVENT, user_data), 24);
        assert_eq!(offset_of!(espeak_EVENT, id), 32);
        assert_eq!(size_of::<espeak_EVENT_id>(), 8);
    }
}
