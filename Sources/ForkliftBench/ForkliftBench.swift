// Placeholder module (issue 5): the V2 load generator behind `forklift bench`.
import Histogram
import NIOCore
