//! VizQL Data Service and usage-stats over a site (being written).
