import Testing

@Suite struct ImagePlaceholderTests {
    @Test func builds() { #expect(Bool(true)) }
}
