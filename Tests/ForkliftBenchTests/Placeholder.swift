import Testing

@Suite struct BenchPlaceholderTests {
    @Test func builds() { #expect(Bool(true)) }
}
