// The translation unit that builds cmake/test_pch.h into a precompiled header.
