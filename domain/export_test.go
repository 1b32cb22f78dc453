package domain

// ShiftPlaceholders exposes shiftPlaceholders to the external tests.
var ShiftPlaceholders = shiftPlaceholders
