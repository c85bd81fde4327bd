// The translation unit that builds cmake/library_pch.h into a precompiled header.
