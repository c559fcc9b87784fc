//! Sanitizing untrusted recipient text.

use template::sanitize;

fn check(input: &str, expect: &str) {
    assert_eq!(sanitize(input), expect, "sanitize({input:?})");
}

#[test]
fn strips_bidi_overrides() {
    check("abc\u{202E}fdp.exe", "abcfdp.exe");
    check("\u{2067}مرحبا\u{2069}", "مرحبا");
}

#[test]
fn strips_controls_and_turns_line_breaks_into_spaces() {
    check("Pri\u{0}ya\u{7}", "Priya");
    check("Priya\r\nSharma", "Priya Sharma");
    check("\u{1b}[2JPriya", "[2JPriya");
    check("\u{feff}Priya", "Priya");
}

#[test]
fn nfc_normalizes() {
    check("e\u{301}", "é");
    check("Ame\u{301}lie", "Amélie");
    check("\u{1100}\u{1161}", "\u{ac00}");
}

#[test]
fn keeps_joiners_needed_by_indic_scripts() {
    // क्‍ष: the ZWJ asks for the half form; removing it changes the rendering.
    check("क्\u{200D}ष", "क्\u{200D}ष");
    check("क्\u{200C}ष", "क्\u{200C}ष");
    check("ப்ரியா", "ப்ரியா");
}

#[test]
fn collapses_whitespace() {
    check("  a \t\t b  ", "a b");
    check("a\u{3000}b", "a b");
    check("\n\n", "");
}
