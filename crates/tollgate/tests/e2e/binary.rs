//! The binary as built: its debug sections (the line tables of backtraces) are compressed,
//! which keeps file:line in backtraces at a third of the size (decision 017).

/// The names and flags of an ELF64 little-endian file's sections.
fn sections(elf: &[u8]) -> Vec<(String, u64)> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((elf[4], elf[5]), (2, 1), "not ELF64 little-endian");
    let (offset, size, count, names) = (u64_at(0x28) as usize, u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| offset + i * size;
    let strings = u64_at(header(names) + 0x18) as usize;
    (0..count)
        .map(|i| {
            let name_at = strings + u32_at(header(i));
            let end = elf[name_at..].iter().position(|&b| b == 0).unwrap() + name_at;
            (
                String::from_utf8_lossy(&elf[name_at..end]).to_string(),
                u64_at(header(i) + 8),
            )
        })
        .collect()
}

#[test]
fn the_binary_keeps_its_line_tables_and_compresses_them() {
    const SHF_ALLOC: u64 = 0x2;
    const SHF_COMPRESSED: u64 = 0x800;
    let elf = std::fs::read(env!("CARGO_BIN_EXE_tollgate")).unwrap();
    let sections = sections(&elf);
    // The sections a backtrace reads for file:line (the linker leaves sections too small
    // to gain alone, such as a few-byte `.debug_frame`).
    for wanted in [".debug_line", ".debug_info"] {
        let (_, flags) = sections
            .iter()
            .find(|(n, _)| n == wanted)
            .unwrap_or_else(|| panic!("{wanted} missing: {sections:?}"));
        assert_eq!(flags & SHF_ALLOC, 0, "{wanted} is not loaded");
        assert_ne!(flags & SHF_COMPRESSED, 0, "{wanted} is not compressed");
    }
}
